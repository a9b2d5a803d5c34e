-- Each product's public view (`ProductPublic` as JSON text, what the public product page and a
-- search hit show), rendered by the service whenever the product changes and kept with it, so
-- that reads hand the stored text out instead of decoding and validating the row each time.
-- `public_view_key` names the version of the view it was rendered with. Adding nullable columns
-- rewrites nothing; the service renders the existing products at start, in short batches, and
-- renders on each read whatever is not rendered yet.
ALTER TABLE product ADD COLUMN public_view text, ADD COLUMN public_view_key text;
