"""A company's branding: its logo and accent colour, shown to its candidates and
referees on their link pages, in their emails and on the report PDF."""
