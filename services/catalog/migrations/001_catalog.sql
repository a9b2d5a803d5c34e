-- Catalogue: vendor projection, storefronts (etalase), products, revisions, price history.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- What this service knows of each vendor (penyedia), kept from the vendor events.
CREATE TABLE vendor_projection (
    vendor_id   uuid PRIMARY KEY,
    version     integer NOT NULL,
    state       text NOT NULL,
    legal_name  text NOT NULL,
    kbli        text[] NOT NULL,
    region_code text NOT NULL,
    scale       text NOT NULL,
    is_umk      boolean NOT NULL,
    is_koperasi boolean NOT NULL,
    is_local    boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE etalase (
    id                uuid PRIMARY KEY,
    code              text NOT NULL UNIQUE,
    name              text NOT NULL,
    description       text NOT NULL DEFAULT '',
    state             text NOT NULL CHECK (state IN ('draft', 'open', 'closed')),
    categories        jsonb NOT NULL,
    vendor_types      text[] NOT NULL,
    kbli              text[] NOT NULL,
    only_local        boolean NOT NULL,
    only_umk_koperasi boolean NOT NULL,
    price_ceiling     bigint CHECK (price_ceiling > 0),
    recurate_changes  boolean NOT NULL,
    collections       jsonb NOT NULL,
    version           integer NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE product (
    id                 uuid PRIMARY KEY,
    etalase_id         uuid NOT NULL REFERENCES etalase (id),
    vendor_id          uuid NOT NULL REFERENCES vendor_projection (vendor_id),
    vendor_type        text NOT NULL,
    name               text NOT NULL,
    description        text NOT NULL,
    specification      jsonb NOT NULL,
    category_code      text NOT NULL,
    category_path      text[] NOT NULL,
    kbki               text NOT NULL,
    unit               text NOT NULL,
    price              bigint NOT NULL CHECK (price > 0),
    regional_prices    jsonb NOT NULL,
    tax_percent        numeric(5, 2) NOT NULL,
    pdn                boolean NOT NULL,
    tkdn               numeric(5, 2),
    bmp                numeric(5, 2),
    tkdn_certificate   text,
    tkdn_verified      boolean NOT NULL DEFAULT false,
    sni                text,
    brand              text,
    stock              integer NOT NULL CHECK (stock >= 0),
    delivery_regions   text[] NOT NULL,
    photos             text[] NOT NULL,
    state              text NOT NULL
        CHECK (state IN ('submitted', 'listed', 'rejected', 'taken_down')),
    taken_down_by      text CHECK (taken_down_by IN ('manager', 'vendor', 'vendor_status')),
    state_reasons      text[] NOT NULL DEFAULT '{}',
    revision           integer NOT NULL DEFAULT 1,
    version            integer NOT NULL DEFAULT 0,
    -- Denormalised so the public search reads one table with partial indexes.
    etalase_open       boolean NOT NULL,
    vendor_is_umk      boolean NOT NULL,
    vendor_is_koperasi boolean NOT NULL,
    vendor_is_local    boolean NOT NULL,
    search_words       text[] NOT NULL,
    -- Only a reviewed TKDN/BMP claim counts in filters and sorting.
    tkdn_bmp           numeric(6, 2) GENERATED ALWAYS AS (
        CASE WHEN tkdn_verified THEN coalesce(tkdn, 0) + coalesce(bmp, 0) ELSE 0 END
    ) STORED,
    umkm_koperasi      boolean GENERATED ALWAYS AS (vendor_is_umk OR vendor_is_koperasi) STORED,
    searchable         boolean GENERATED ALWAYS AS (state = 'listed' AND etalase_open) STORED,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX product_vendor ON product (vendor_id, state);
CREATE INDEX product_etalase ON product (etalase_id, state);
CREATE INDEX product_state ON product (state, id);
-- Public search: only searchable rows are indexed, so the indexes stay as small as the listing.
CREATE INDEX product_search_words ON product USING gin (search_words) WHERE searchable;
CREATE INDEX product_search_id ON product (id) WHERE searchable;
CREATE INDEX product_search_price ON product (price, id) WHERE searchable;
CREATE INDEX product_search_tkdn ON product (tkdn_bmp, id) WHERE searchable;
CREATE INDEX product_search_etalase_price ON product (etalase_id, price, id) WHERE searchable;
CREATE INDEX product_search_regions ON product USING gin (delivery_regions) WHERE searchable;
CREATE INDEX product_search_category ON product USING gin (category_path) WHERE searchable;

-- Every vendor edit is a revision: applied at once, or pending until the review decides.
CREATE TABLE product_revision (
    product_id  uuid NOT NULL REFERENCES product (id),
    revision    integer NOT NULL,
    changes     jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('applied', 'pending', 'rejected', 'withdrawn')),
    reasons     text[] NOT NULL DEFAULT '{}',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_by  text,
    decided_at  timestamptz,
    PRIMARY KEY (product_id, revision)
);
CREATE UNIQUE INDEX product_revision_one_pending ON product_revision (product_id)
    WHERE status = 'pending';

CREATE TABLE product_price_history (
    product_id      uuid NOT NULL REFERENCES product (id),
    revision        integer NOT NULL,
    price           bigint NOT NULL,
    regional_prices jsonb NOT NULL,
    effective_from  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, revision)
);

-- Every word ever indexed: typos are resolved here by trigram similarity (a small table), and
-- products are then matched on exact words through the GIN array index.
CREATE TABLE search_word (
    word text PRIMARY KEY
);
CREATE INDEX search_word_trgm ON search_word USING gin (word gin_trgm_ops);
