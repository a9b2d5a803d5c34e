-- How many orders are in each state, with or without an SP, per fiscal year and OPD: the funnel
-- reads these counts instead of counting the year's orders. Kept up to date like kpi_totals, by
-- statement triggers on `orders` (an order's old state taken away, its new one added); the table
-- to update is the trigger's argument, so a rebuild's shadow table keeps its own counts.
CREATE TABLE kpi_states (
    fiscal_year integer NOT NULL,
    opd_id      text    NOT NULL,
    state       text    NOT NULL,
    has_sp      boolean NOT NULL,
    orders      bigint  NOT NULL,
    PRIMARY KEY (fiscal_year, opd_id, state, has_sp)
);

CREATE FUNCTION kpi_states_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change record;
BEGIN
    FOR change IN
        SELECT * FROM (VALUES ('old_rows', -1), ('new_rows', 1)) c(rows, sign)
        WHERE c.rows = 'new_rows' OR TG_OP = 'UPDATE'
    LOOP
        EXECUTE format($sql$
            INSERT INTO %1$I AS t
            SELECT fiscal_year, opd_id, state, sp_number IS NOT NULL, %3$s * count(*)
            FROM %2$I
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            ON CONFLICT (fiscal_year, opd_id, state, has_sp) DO UPDATE SET
              orders = t.orders + excluded.orders
            $sql$, TG_ARGV[0], change.rows, change.sign);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_kpi_states_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_states_apply('kpi_states');
CREATE TRIGGER orders_kpi_states_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_states_apply('kpi_states');

INSERT INTO kpi_states
SELECT fiscal_year, opd_id, state, sp_number IS NOT NULL, count(*)
FROM orders GROUP BY 1, 2, 3, 4;
