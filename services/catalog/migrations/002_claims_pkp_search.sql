-- Claims curated one by one (TKDN, BMP, PDN, SNI), TKDN certificates with their validity date,
-- the vendor's PKP status, and the version of the search-word rule each product was indexed with.
ALTER TABLE vendor_projection ADD COLUMN is_pkp boolean;

ALTER TABLE product
    ADD COLUMN tkdn_status text NOT NULL DEFAULT 'pending'
        CHECK (tkdn_status IN ('pending', 'verified', 'refused', 'expired')),
    ADD COLUMN bmp_status text NOT NULL DEFAULT 'pending'
        CHECK (bmp_status IN ('pending', 'verified', 'refused', 'expired')),
    ADD COLUMN pdn_status text NOT NULL DEFAULT 'pending'
        CHECK (pdn_status IN ('pending', 'verified', 'refused', 'expired')),
    ADD COLUMN sni_status text NOT NULL DEFAULT 'pending'
        CHECK (sni_status IN ('pending', 'verified', 'refused', 'expired')),
    ADD COLUMN tkdn_valid_until date,
    ADD COLUMN search_version integer NOT NULL DEFAULT 1;

-- The old single mark verified TKDN and BMP together; PDN and SNI were never curated.
UPDATE product SET tkdn_status = 'verified' WHERE tkdn_verified AND tkdn IS NOT NULL;
UPDATE product SET bmp_status = 'verified'
    WHERE tkdn_verified AND tkdn IS NOT NULL AND bmp IS NOT NULL;

DROP INDEX product_search_tkdn;
ALTER TABLE product DROP COLUMN tkdn_bmp, DROP COLUMN tkdn_verified;

-- What counts is derived here, once: a claim counts when it is made and verified; BMP only with
-- a verified TKDN; a verified TKDN makes the product domestic (PDN).
ALTER TABLE product
    ADD COLUMN tkdn_verified boolean GENERATED ALWAYS AS (
        tkdn IS NOT NULL AND tkdn_status = 'verified'
    ) STORED,
    ADD COLUMN bmp_verified boolean GENERATED ALWAYS AS (
        bmp IS NOT NULL AND bmp_status = 'verified'
        AND tkdn IS NOT NULL AND tkdn_status = 'verified'
    ) STORED,
    ADD COLUMN pdn_verified boolean GENERATED ALWAYS AS (
        (tkdn IS NOT NULL AND tkdn_status = 'verified') OR (pdn AND pdn_status = 'verified')
    ) STORED,
    ADD COLUMN sni_verified boolean GENERATED ALWAYS AS (
        sni IS NOT NULL AND sni_status = 'verified'
    ) STORED,
    ADD COLUMN tkdn_bmp numeric(6, 2) GENERATED ALWAYS AS (
        CASE WHEN tkdn IS NOT NULL AND tkdn_status = 'verified'
             THEN tkdn + CASE WHEN bmp IS NOT NULL AND bmp_status = 'verified'
                              THEN bmp ELSE 0 END
             ELSE 0 END
    ) STORED;

CREATE INDEX product_search_tkdn ON product (tkdn_bmp, id) WHERE searchable;
-- The daily lapse check reads verified TKDN claims by their validity date.
CREATE INDEX product_tkdn_expiry ON product (tkdn_valid_until) WHERE tkdn_status = 'verified';
-- Products indexed with an older search-word rule, for the re-index at start.
CREATE INDEX product_search_version ON product (search_version, id);
