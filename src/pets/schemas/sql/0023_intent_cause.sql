-- What made a signal- or model-driven bot propose an order (OrderIntent.cause), so a trader can ask
-- "why did bot 9 buy this?" of the database as of the run journal. NULL for order-book bots.
ALTER TABLE order_intents
    ADD COLUMN cause_source        text,
    ADD COLUMN cause_signal_id     text,
    ADD COLUMN cause_model_version text,
    ADD COLUMN cause_probability   numeric,
    ADD COLUMN cause_note          text;
CREATE INDEX order_intents_cause_signal_idx ON order_intents (cause_signal_id) WHERE cause_signal_id IS NOT NULL;
