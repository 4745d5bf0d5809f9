output "table_name" {
  description = "The table name, for DYNAMODB_TABLE_NAME."
  value       = aws_dynamodb_table.hsdo.name
}

output "table_arn" {
  description = "The table's ARN, for policies written outside this module."
  value = aws_dynamodb_table.hsdo.arn
}

output "server_policy_arn" {
  description = "The server's IAM policy (attached to server_role_names), for other roles or instance profiles."
  value = aws_iam_policy.server.arn
}

output "client_policy_arn" {
  description = "The client's IAM policy (attached to client_role_names), for other roles or instance profiles."
  value = aws_iam_policy.client.arn
}

locals {
  client_environment = {
    DYNAMODB_TABLE_NAME = aws_dynamodb_table.hsdo.name
    AWS_REGION          = local.region
  }
  # Empty values are left out: hsdo reads an empty SERVER_MODE as a mistake.
  server_environment = merge(local.client_environment, {
    for name, value in {
      SERVER_MODE                    = length(var.asg_names) > 0 ? "aws" : ""
      SERVER_ASG_NAMES               = join(",", var.asg_names)
      HSDO_SERVER_AWS_LIFECYCLE_HOOK = local.lifecycle_hook ? var.lifecycle_hook_name : ""
    } : name => value if value != ""
  })
}

output "server_environment" {
  description = "Variables for `hsdo --server` matching this infrastructure (lines of /etc/default/hsdo)."
  value       = local.server_environment
}

output "client_environment" {
  description = "Variables for `hsdo --client` matching this infrastructure (lines of /etc/default/hsdo)."
  value       = local.client_environment
}
