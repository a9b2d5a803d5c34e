-- A KSWP renewal the vendor submitted, awaiting the catalogue manager (NULL: none pending).
ALTER TABLE vendors ADD COLUMN kswp_renewal jsonb;

-- Snapshot fields as last published, kept while a corrected rule's snapshot is not yet
-- published; the service publishes it (ekatalog.vendor.snapshot_corrected.v1) and clears this.
-- Every existing vendor gets one: its NPWP takes the 16-digit form, its KBLI codes are marked
-- with their edition, and its scale is re-derived from annual sales where they are known.
ALTER TABLE vendors ADD COLUMN correction jsonb;
UPDATE vendors SET correction = jsonb_build_object(
    'npwp', npwp,
    'scale', scale,
    'is_umk', scale IN ('mikro', 'kecil'),
    'kbli_editions', NULL);

-- NPWP: one canonical 16-digit form (PMK 112/2022); the old 15 digits take a leading 0.
UPDATE vendors SET npwp = '0' || npwp, profile = jsonb_set(profile, '{npwp}', to_jsonb('0' || npwp))
WHERE length(npwp) = 15;
DELETE FROM npwp_blacklist old
WHERE length(old.npwp) = 15
  AND EXISTS (SELECT 1 FROM npwp_blacklist new WHERE new.npwp = '0' || old.npwp);
UPDATE npwp_blacklist SET npwp = '0' || npwp WHERE length(npwp) = 15;

-- KBLI: codes registered so far are from the KBLI 2020 edition.
UPDATE vendors SET profile = jsonb_set(profile, '{kbli}', (
    SELECT jsonb_agg(jsonb_build_object('code', code, 'edition', '2020') ORDER BY code)
    FROM jsonb_array_elements_text(profile -> 'kbli') AS code));

CREATE INDEX vendors_correction ON vendors (vendor_id) WHERE correction IS NOT NULL;
