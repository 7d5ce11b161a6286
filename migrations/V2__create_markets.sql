-- Marketplaces the agents watch, and the categories deals are filed under.
CREATE TABLE markets (
    id         smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       text        NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9_]+$'),
    name       text        NOT NULL,
    base_url   text        NOT NULL,
    currency   char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    is_enabled boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id        smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug      text     NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]+$'),
    name      text     NOT NULL,
    parent_id smallint REFERENCES categories (id) ON DELETE RESTRICT
);
CREATE INDEX categories_parent_id_idx ON categories (parent_id);
