"""The recruiter's desk: the dashboard's figures (``summary``), the notices a request's
recruiter receives (``notices``), their preferences page and the filtered list's CSV
export (``views``)."""
