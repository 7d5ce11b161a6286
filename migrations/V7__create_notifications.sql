-- Messages to users: price drops, goal matches. Unsent ones are the dispatcher's queue.
CREATE TABLE notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    deal_id    bigint      REFERENCES deals (id) ON DELETE SET NULL,
    goal_id    bigint      REFERENCES goals (id) ON DELETE SET NULL,
    kind       text        NOT NULL CHECK (kind IN ('price_drop', 'goal_match', 'deal_expired', 'system')),
    channel    text        NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'push', 'webhook')),
    payload    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    read_at    timestamptz,
    CONSTRAINT notifications_read_after_sent CHECK (read_at IS NULL OR sent_at IS NOT NULL)
);
CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_unsent_idx ON notifications (created_at) WHERE sent_at IS NULL;
