# The table of every pool: partition key `pool` (S), sort key `slot` (N).
# In each pool, slot -1 is the leader lease, 0 the head, 1..N the slots
# (docs/ARCHITECTURE.md, "The table"). The key schema must stay what
# packages/store/src/table.ts creates and checks; test/terraform.test.ts
# compares the two.
resource "aws_dynamodb_table" "hsdo" {
  name = var.table_name
  # Clients read the head every tick and the server writes only on change:
  # a small, steady load that on-demand billing prices well without tuning.
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pool"
  range_key    = "slot"

  attribute {
    name = "pool"
    type = "S"
  }

  attribute {
    name = "slot"
    type = "N"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}
