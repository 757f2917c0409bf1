-- An execution report is unique by report_id (deterministic: the order, the kind and its count). The
-- table's UNIQUE (report_id, ts) let a report re-emitted with another ts after an executor crash be
-- stored twice; a hypertable's unique indexes must include ts, so the writer skips a report whose id
-- is stored (pets.pipelines.timescale), looked up through this index. Earlier duplicates go: the
-- first row of each report_id (by ts) is the one published first.
DELETE FROM execution_reports a
USING execution_reports b
WHERE a.report_id = b.report_id AND (a.ts, a.ctid) > (b.ts, b.ctid);

CREATE INDEX execution_reports_report_id_idx ON execution_reports (report_id);
