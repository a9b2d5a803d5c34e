-- What each producer's events say, one row per aggregate at its newest per-aggregate version.
-- KPIs join these rows when they are asked for, so an event that arrives before another
-- aggregate's (an order before its vendor) needs no pending state: the join completes once both
-- are here. Every upsert keeps the row with the higher version, which makes a repeated or late
-- event a no-op and lets a batch be applied in one statement per table.

CREATE TABLE vendor (
    vendor_id    uuid        PRIMARY KEY,
    version      integer     NOT NULL,
    occurred_at  timestamptz NOT NULL,
    state        text        NOT NULL,
    legal_name   text        NOT NULL,
    legal_form   text        NOT NULL,
    region_code  text        NOT NULL,
    scale        text        NOT NULL,
    is_umk       boolean     NOT NULL,
    is_koperasi  boolean     NOT NULL,
    is_local     boolean     NOT NULL
);

CREATE TABLE etalase (
    etalase_id   uuid        PRIMARY KEY,
    version      integer     NOT NULL,
    occurred_at  timestamptz NOT NULL,
    code         text        NOT NULL,
    name         text        NOT NULL,
    state        text        NOT NULL
);

CREATE TABLE product (
    product_id    uuid        PRIMARY KEY,
    version       integer     NOT NULL,
    occurred_at   timestamptz NOT NULL,
    etalase_id    uuid        NOT NULL,
    vendor_id     uuid        NOT NULL,
    state         text        NOT NULL,
    price         bigint      NOT NULL,
    pdn           boolean     NOT NULL,
    tkdn          numeric,
    bmp           numeric,
    tkdn_verified boolean     NOT NULL
);

CREATE TABLE rup (
    rup_code         text        PRIMARY KEY,
    version          integer     NOT NULL,
    occurred_at      timestamptz NOT NULL,
    opd_id           text        NOT NULL,
    package_name     text        NOT NULL,
    fiscal_year      integer     NOT NULL,
    procurement_type text        NOT NULL,
    pagu             bigint      NOT NULL
);
CREATE INDEX rup_year ON rup (fiscal_year, opd_id);

-- An order at its newest version, with the vendor's flags as they were when it was placed.
CREATE TABLE orders (
    order_id           uuid        PRIMARY KEY,
    version            integer     NOT NULL,
    occurred_at        timestamptz NOT NULL,
    state              text        NOT NULL,
    opd_id             text        NOT NULL,
    rup_code           text        NOT NULL,
    procurement_type   text        NOT NULL,
    fiscal_year        integer     NOT NULL,
    method             text        NOT NULL,
    vendor_id          uuid        NOT NULL,
    vendor_name        text        NOT NULL,
    vendor_scale       text        NOT NULL,
    vendor_is_umk      boolean     NOT NULL,
    vendor_is_koperasi boolean     NOT NULL,
    vendor_is_local    boolean     NOT NULL,
    total              bigint      NOT NULL,
    sp_number          text,
    sp_signed_at       timestamptz,
    deadline_kind      text,
    priority_compliant boolean     NOT NULL
);
CREATE INDEX orders_year ON orders (fiscal_year, opd_id);

-- The lines of an order; a KPI joins the lines whose version is the order's.
CREATE TABLE order_line (
    order_id               uuid    NOT NULL,
    line_no                integer NOT NULL,
    version                integer NOT NULL,
    product_id             uuid    NOT NULL,
    name                   text    NOT NULL,
    quantity               integer NOT NULL,
    unit_price             bigint  NOT NULL,
    line_total             bigint  NOT NULL,
    pdn                    boolean NOT NULL,
    tkdn                   numeric,
    bmp                    numeric,
    tkdn_verified          boolean NOT NULL,
    priority_tier          text    NOT NULL,
    best_available_tier    text    NOT NULL,
    priority_compliant     boolean NOT NULL,
    priority_justification text,
    PRIMARY KEY (order_id, line_no)
);

-- When an order first reached each step (the event type's name, e.g. approved, received).
CREATE TABLE order_step (
    order_id    uuid        NOT NULL,
    step        text        NOT NULL,
    version     integer     NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, step)
);

-- Every order change, as the event said it: the open-data releases and the public change feed.
-- `txid` is the writing transaction: the feed serves only rows whose transaction is below every
-- running one, so a change that commits late can never appear behind a reader's cursor.
CREATE TABLE order_change (
    order_id    uuid        NOT NULL,
    version     integer     NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    snapshot    text        NOT NULL,  -- the event as JSON, as this service read it
    seq         bigserial   NOT NULL,
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (order_id, version)
);
CREATE INDEX order_change_feed ON order_change (txid, seq);
