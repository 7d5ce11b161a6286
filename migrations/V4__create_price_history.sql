-- Every price observation, so agents can tell a real deal from an inflated list price.
CREATE TABLE price_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deal_id     bigint        NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    price       numeric(12,2) NOT NULL CHECK (price >= 0),
    currency    char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    observed_at timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX price_history_deal_observed_idx ON price_history (deal_id, observed_at DESC);
