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
    priority_compliant boolean     NOT NULL,
    -- Derived from the event alone when it is stored (services/reporting/domain.py), so that
    -- the totals below need no join: the order counts as spent (SP issued, not undone), and the
    -- sums of its lines' verified domestic content.
    spent               boolean NOT NULL,
    spend_pdn           bigint  NOT NULL,
    spend_tkdn_weighted numeric NOT NULL,
    spend_tkdn_bmp_40   bigint  NOT NULL,
    lines_priority_skipped integer NOT NULL
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
    content_class          text    NOT NULL,
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

-- The share KPIs' totals per fiscal year and OPD, kept up to date by the statement triggers
-- below from the rows each upsert inserted or replaced: an order's old contribution is taken
-- away and its new one added, in the same transaction. Only spent orders contribute, except to
-- spend_completed. The table to update is the trigger's argument, so a rebuild's shadow table
-- keeps its own totals.
CREATE TABLE kpi_totals (
    fiscal_year            integer NOT NULL,
    opd_id                 text    NOT NULL,
    spend_sp               bigint  NOT NULL,
    spend_completed        bigint  NOT NULL,
    spend_umk_koperasi     bigint  NOT NULL,
    spend_local            bigint  NOT NULL,
    spend_pdn              bigint  NOT NULL,
    spend_tkdn_weighted    numeric NOT NULL,
    spend_tkdn_bmp_40      bigint  NOT NULL,
    lines_priority_skipped bigint  NOT NULL,
    PRIMARY KEY (fiscal_year, opd_id)
);

CREATE FUNCTION kpi_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change record;
BEGIN
    FOR change IN
        SELECT * FROM (VALUES ('old_rows', -1), ('new_rows', 1)) c(rows, sign)
        WHERE c.rows = 'new_rows' OR TG_OP = 'UPDATE'
    LOOP
        EXECUTE format($sql$
            INSERT INTO %1$I AS t
            SELECT fiscal_year, opd_id,
                   coalesce(%3$s * sum(total) FILTER (WHERE spent), 0),
                   coalesce(%3$s * sum(total) FILTER (WHERE state = 'completed'), 0),
                   coalesce(%3$s * sum(total) FILTER (
                     WHERE spent AND (vendor_is_umk OR vendor_is_koperasi)), 0),
                   coalesce(%3$s * sum(total) FILTER (WHERE spent AND vendor_is_local), 0),
                   coalesce(%3$s * sum(spend_pdn) FILTER (WHERE spent), 0),
                   coalesce(%3$s * sum(spend_tkdn_weighted) FILTER (WHERE spent), 0),
                   coalesce(%3$s * sum(spend_tkdn_bmp_40) FILTER (WHERE spent), 0),
                   coalesce(%3$s * sum(lines_priority_skipped) FILTER (WHERE spent), 0)
            FROM %2$I
            GROUP BY fiscal_year, opd_id ORDER BY fiscal_year, opd_id
            ON CONFLICT (fiscal_year, opd_id) DO UPDATE SET
              spend_sp = t.spend_sp + excluded.spend_sp,
              spend_completed = t.spend_completed + excluded.spend_completed,
              spend_umk_koperasi = t.spend_umk_koperasi + excluded.spend_umk_koperasi,
              spend_local = t.spend_local + excluded.spend_local,
              spend_pdn = t.spend_pdn + excluded.spend_pdn,
              spend_tkdn_weighted = t.spend_tkdn_weighted + excluded.spend_tkdn_weighted,
              spend_tkdn_bmp_40 = t.spend_tkdn_bmp_40 + excluded.spend_tkdn_bmp_40,
              lines_priority_skipped = t.lines_priority_skipped
                + excluded.lines_priority_skipped
            $sql$, TG_ARGV[0], change.rows, change.sign);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_kpi_totals_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_totals_apply('kpi_totals');
CREATE TRIGGER orders_kpi_totals_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_totals_apply('kpi_totals');
