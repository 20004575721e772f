-- Each evaluation records how many profiles the guardrails left out of segmentation at that time.
ALTER TABLE audience_evaluation ADD COLUMN excluded_profiles integer;
