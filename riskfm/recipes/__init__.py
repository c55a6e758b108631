"""End-to-end protocols built only from riskfm's pieces (the demo, and the papers' recipes)."""
