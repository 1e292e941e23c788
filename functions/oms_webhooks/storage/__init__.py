"""DynamoDB table definitions and list pagination."""
