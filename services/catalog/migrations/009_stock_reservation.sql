-- The catalog's side of the orders stock saga: one row per order, so a redelivered or replayed
-- order event never reserves or releases twice.
CREATE TABLE stock_reservation (
    order_id   uuid PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('reserved', 'rejected', 'released', 'consumed')),
    lines      jsonb NOT NULL,
    reason     text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
