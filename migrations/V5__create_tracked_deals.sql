-- Deals a user asked the agents to watch, with the price that would trigger an alert.
CREATE TABLE tracked_deals (
    user_id      bigint        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    deal_id      bigint        NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    target_price numeric(12,2) CHECK (target_price >= 0),
    created_at   timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, deal_id)
);
CREATE INDEX tracked_deals_deal_id_idx ON tracked_deals (deal_id);
