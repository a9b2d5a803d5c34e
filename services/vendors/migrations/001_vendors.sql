-- Vendors (penyedia). `profile` is the declared profile as validated by the domain model; the
-- columns beside it are copies kept for constraints, filters and the daily checks.
CREATE TABLE vendors (
    vendor_id        uuid PRIMARY KEY,
    state            text        NOT NULL,
    version          integer     NOT NULL,
    profile          jsonb       NOT NULL,
    legal_name       text        NOT NULL,
    legal_form       text        NOT NULL,
    nib              text        NOT NULL CONSTRAINT vendors_nib_key UNIQUE,
    npwp             text        NOT NULL,
    kbli             text[]      NOT NULL,
    region_code      text        NOT NULL,
    scale            text        NOT NULL,
    kswp_valid_until date,
    kswp_status      text        NOT NULL,
    suspended_until  date,
    registered_at    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX vendors_listing ON vendors (registered_at, vendor_id);
CREATE INDEX vendors_state ON vendors (state);
CREATE INDEX vendors_kbli ON vendors USING gin (kbli);

-- One row per event the vendor went through, in version order: the history a reader sees.
CREATE TABLE vendor_history (
    vendor_id   uuid        NOT NULL REFERENCES vendors (vendor_id),
    version     integer     NOT NULL,
    event       text        NOT NULL,
    from_state  text,
    to_state    text        NOT NULL,
    actor       text        NOT NULL,
    detail      jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (vendor_id, version)
);

-- NPWPs the catalogue manager barred from registering (daftar hitam).
CREATE TABLE npwp_blacklist (
    npwp       text        PRIMARY KEY,
    reason     text        NOT NULL,
    added_by   text        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now()
);
