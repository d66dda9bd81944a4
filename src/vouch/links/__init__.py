"""Private links for people outside the company: candidates and referees (issue #5)."""
