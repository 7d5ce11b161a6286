-- A shopping goal an agent works on: "a 65 inch TV under 800 USD by Friday".
CREATE TABLE goals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category_id smallint      REFERENCES categories (id) ON DELETE SET NULL,
    description text          NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    max_price   numeric(12,2) CHECK (max_price >= 0),
    currency    char(3)       NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    status      text          NOT NULL DEFAULT 'open'
                              CHECK (status IN ('open', 'fulfilled', 'abandoned')),
    due_at      timestamptz,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX goals_user_status_idx ON goals (user_id, status);

-- Deals an agent proposed for a goal, with its reasoning score.
CREATE TABLE goal_matches (
    goal_id    bigint       NOT NULL REFERENCES goals (id) ON DELETE CASCADE,
    deal_id    bigint       NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    score      numeric(4,3) NOT NULL CHECK (score BETWEEN 0 AND 1),
    matched_at timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (goal_id, deal_id)
);
CREATE INDEX goal_matches_deal_id_idx ON goal_matches (deal_id);
