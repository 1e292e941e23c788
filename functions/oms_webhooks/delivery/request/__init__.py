"""One HTTP attempt: envelope and signatures, the SSRF guard, the transport's deadline, redaction of
what came back."""
