"""DynamoDB: table definitions, list pagination, and the stores of the circuit breaker's items,
API tokens and operators' slots (a Protocol, its DynamoDB class, a cached ``get_store()``)."""
