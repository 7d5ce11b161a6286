-- A product offer found on a market; the agents keep its current price here.
CREATE TABLE deals (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    market_id       smallint      NOT NULL REFERENCES markets (id) ON DELETE RESTRICT,
    category_id     smallint      REFERENCES categories (id) ON DELETE SET NULL,
    external_id     text          NOT NULL,
    title           text          NOT NULL,
    url             text          NOT NULL,
    currency        char(3)       NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    current_price   numeric(12,2) NOT NULL CHECK (current_price >= 0),
    list_price      numeric(12,2) CHECK (list_price >= 0),
    discount_pct    numeric(5,2)  GENERATED ALWAYS AS (
                        CASE WHEN list_price > 0
                             THEN round(100 * (list_price - current_price) / list_price, 2)
                        END) STORED,
    status          text          NOT NULL DEFAULT 'active'
                                  CHECK (status IN ('active', 'expired', 'sold_out')),
    first_seen_at   timestamptz   NOT NULL DEFAULT now(),
    last_checked_at timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT deals_market_external_key UNIQUE (market_id, external_id)
);
CREATE INDEX deals_category_id_idx ON deals (category_id);
-- The agents' main query: active deals by best discount.
CREATE INDEX deals_active_discount_idx ON deals (discount_pct DESC) WHERE status = 'active';
