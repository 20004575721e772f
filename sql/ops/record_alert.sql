INSERT INTO ops_alert (alert, subject, details) VALUES (%(alert)s, %(subject)s, %(details)s)
