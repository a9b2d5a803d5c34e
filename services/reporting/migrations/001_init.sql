-- The reporting service's own tables are added by later migrations.
SELECT 1;
