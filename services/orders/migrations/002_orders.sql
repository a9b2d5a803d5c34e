-- Orders: projections of vendors and listed products, RUP packages, orders and their timeline.

-- What this service knows of each vendor, kept from the vendor events.
CREATE TABLE vendor_projection (
    vendor_id   uuid PRIMARY KEY,
    version     integer NOT NULL,
    state       text NOT NULL,
    state_reason text,
    legal_name  text NOT NULL,
    scale       text NOT NULL,
    is_umk      boolean NOT NULL,
    is_koperasi boolean NOT NULL,
    is_local    boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- What this service knows of each product, kept from the product events.
CREATE TABLE product_projection (
    product_id    uuid PRIMARY KEY,
    version       integer NOT NULL,
    vendor_id     uuid NOT NULL,
    name          text NOT NULL,
    category_code text NOT NULL,
    unit          text NOT NULL,
    price         bigint NOT NULL,
    pdn           boolean NOT NULL,
    pdn_verified  boolean,
    tkdn          double precision,
    bmp           double precision,
    tkdn_verified boolean NOT NULL,
    bmp_verified  boolean,
    state         text NOT NULL,
    state_reason  text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_projection_listed_category ON product_projection (category_code)
    WHERE state = 'listed';

-- RUP packages (rencana umum pengadaan): an OPD's budget lines.
CREATE TABLE rup_package (
    rup_code         text PRIMARY KEY,
    opd_id           text NOT NULL,
    package_name     text NOT NULL,
    fiscal_year      integer NOT NULL,
    procurement_type text NOT NULL,
    pagu             bigint NOT NULL CHECK (pagu > 0),
    funding_source   text NOT NULL,
    method           text NOT NULL,
    version          integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rup_package_opd ON rup_package (opd_id, rup_code);

CREATE SEQUENCE surat_pesanan_number;

CREATE TABLE orders (
    id                 uuid PRIMARY KEY,
    version            integer NOT NULL,
    state              text NOT NULL,
    opd_id             text NOT NULL,
    rup_code           text NOT NULL REFERENCES rup_package (rup_code),
    procurement_type   text NOT NULL,
    fiscal_year        integer NOT NULL,
    method             text NOT NULL,
    vendor_id          uuid NOT NULL,
    vendor             jsonb NOT NULL,
    lines              jsonb NOT NULL,
    product_ids        uuid[] NOT NULL,
    total              bigint NOT NULL CHECK (total > 0),
    -- Live orders hold their total against the RUP package's pagu.
    live               boolean NOT NULL,
    delivery_address   text NOT NULL,
    placed_by          text NOT NULL,
    placed_by_role     text NOT NULL,
    ppk_id             text NOT NULL,
    negotiation        jsonb NOT NULL DEFAULT '[]',
    sp_number          text UNIQUE,
    sp_signed_at       timestamptz,
    next_deadline      timestamptz,
    deadline_kind      text,
    priority_compliant boolean NOT NULL,
    placed_at          timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX orders_opd ON orders (opd_id, placed_at DESC, id DESC);
CREATE INDEX orders_vendor ON orders (vendor_id, placed_at DESC, id DESC);
CREATE INDEX orders_placed ON orders (placed_at DESC, id DESC);
CREATE INDEX orders_rup_live ON orders (rup_code) WHERE live;
CREATE INDEX orders_deadline ON orders (next_deadline) WHERE next_deadline IS NOT NULL;
CREATE INDEX orders_products ON orders USING gin (product_ids);

-- Every step of an order: who did what, when (the audit trail and the order's timeline).
CREATE TABLE order_timeline (
    order_id   uuid NOT NULL REFERENCES orders (id),
    version    integer NOT NULL,
    event_type text NOT NULL,
    state      text NOT NULL,
    actor      text NOT NULL,
    actor_role text NOT NULL,
    at         timestamptz NOT NULL,
    details    jsonb NOT NULL,
    PRIMARY KEY (order_id, version)
);
