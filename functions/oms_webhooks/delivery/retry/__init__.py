"""When the next attempt comes: countdown policies, Retry-After, SQS holds, the circuit breaker."""
