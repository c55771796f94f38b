-- Makes FerretDB 1.24's equality filters use indexes on its PostgreSQL handler
-- (docs/decisions.md D10). Idempotent: run by `erp infra up` on every start.
--
-- FerretDB pushes `{field: value}` down as `_jsonb->$1 @> $2` (field name and value both
-- bind parameters) and backs a MongoDB index with a btree on `(_jsonb->'field')`. A btree
-- cannot answer `@>`, and a generic plan cannot even see which field is meant, so every
-- look-up, by `_id` included, was a sequential scan of the collection (23 ms at 10,000
-- approvals). Two changes, both on this private cluster only:
--   1. custom plans for every execution, so `_jsonb->'requestId'` is visible to the planner;
--   2. next to each btree FerretDB creates on `(_jsonb->'field')`, a GIN index
--      (jsonb_path_ops) on the same expression, which answers `@>` (0.7 ms at 10,000).

ALTER SYSTEM SET plan_cache_mode = force_custom_plan;
SELECT pg_reload_conf();

CREATE OR REPLACE FUNCTION erp_ferretdb_gin_companion(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    definition text := pg_get_indexdef(index_oid);
    field text;
    table_name text;
    companion text;
BEGIN
    field := substring(definition FROM $re$USING btree \(\(\(_jsonb -> '([^']+)'::text\)\)\)$re$);
    IF field IS NULL THEN
        RETURN;
    END IF;
    SELECT format('%I.%I', n.nspname, t.relname), left(i.relname, 59) || '_gin'
      INTO table_name, companion
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE x.indexrelid = index_oid;
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops)',
        companion, table_name, field
    );
END;
$$;

CREATE OR REPLACE FUNCTION erp_ferretdb_on_create_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    command record;
BEGIN
    FOR command IN SELECT * FROM pg_event_trigger_ddl_commands()
                    WHERE object_type = 'index' LOOP
        PERFORM erp_ferretdb_gin_companion(command.objid);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION erp_ferretdb_on_drop_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    dropped record;
BEGIN
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects()
                    WHERE object_type = 'index' AND original
                      AND object_name NOT LIKE '%\_gin' LOOP
        EXECUTE format(
            'DROP INDEX IF EXISTS %I.%I', dropped.schema_name,
            left(dropped.object_name, 59) || '_gin'
        );
    END LOOP;
END;
$$;

DROP EVENT TRIGGER IF EXISTS erp_ferretdb_gin_on_create;
CREATE EVENT TRIGGER erp_ferretdb_gin_on_create ON ddl_command_end
    WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION erp_ferretdb_on_create_index();

DROP EVENT TRIGGER IF EXISTS erp_ferretdb_gin_on_drop;
CREATE EVENT TRIGGER erp_ferretdb_gin_on_drop ON sql_drop
    WHEN TAG IN ('DROP INDEX')
    EXECUTE FUNCTION erp_ferretdb_on_drop_index();

-- Indexes created before this script first ran get their companion now.
SELECT erp_ferretdb_gin_companion(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');
