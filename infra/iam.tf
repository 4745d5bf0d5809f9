data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # The table's region, read from its ARN (arn:PARTITION:dynamodb:REGION:...).
  # Not data.aws_region: AWS provider 6 deprecates its `name` (and, since
  # 6.x, `id`) for `region`, which provider 5 does not have; the ARN reads
  # the same on both, and it is where hsdo's table really is.
  region = split(":", aws_dynamodb_table.hsdo.arn)[3]

  # The lifecycle hook is opt-in (var.lifecycle_hook): the hook, the
  # permission to complete it and HSDO_SERVER_AWS_LIFECYCLE_HOOK go together.
  lifecycle_hook = var.lifecycle_hook && var.lifecycle_hook_name != "" && length(var.asg_names) > 0

  # The group id inside an Auto Scaling Group ARN is random, so it is the
  # only wildcard; the name pins each ARN to one group.
  asg_arns = [
    for name in var.asg_names :
    "arn:${data.aws_partition.current.partition}:autoscaling:${local.region}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/${name}"
  ]

  # dynamodb:LeadingKeys limits every item read and write to the listed pools.
  pool_conditions = length(var.pools) > 0 ? [var.pools] : []
}

# `hsdo --client`: reads only (the table's description at start-up, the head
# every tick, the pool when it moved).
data "aws_iam_policy_document" "client" {
  # At start-up hsdo checks that the table exists with its key schema, so a
  # wrong name or region is a clear error instead of a retry loop.
  statement {
    sid       = "CheckTableAtStartup"
    effect    = "Allow"
    actions   = ["dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.hsdo.arn]
  }

  statement {
    sid       = "ReadPoolItems"
    effect    = "Allow"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.hsdo.arn]

    dynamic "condition" {
      for_each = local.pool_conditions
      content {
        test     = "ForAllValues:StringEquals"
        variable = "dynamodb:LeadingKeys"
        values   = condition.value
      }
    }
  }
}

# `hsdo --server`: the client's reads, then lease, head and slot writes
# (every write carries a condition expression: fencing is enforced by
# DynamoDB, not by IAM), the Auto Scaling and EC2 describe calls of the AWS
# source, and the lifecycle actions of the watched groups only.
data "aws_iam_policy_document" "server" {
  # Everything the client may do (the table check and item reads), plus the writes below.
  source_policy_documents = [data.aws_iam_policy_document.client.json]

  statement {
    sid       = "WritePoolItemsConditionally"
    effect    = "Allow"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.hsdo.arn]

    dynamic "condition" {
      for_each = local.pool_conditions
      content {
        test     = "ForAllValues:StringEquals"
        variable = "dynamodb:LeadingKeys"
        values   = condition.value
      }
    }
  }

  # These two describe calls support no resource-level permission: AWS only
  # accepts "*" as their resource.
  dynamic "statement" {
    for_each = length(var.asg_names) > 0 ? ["aws"] : []
    content {
      sid       = "ListAutoScalingTargets"
      effect    = "Allow"
      actions   = ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.lifecycle_hook ? ["lifecycle"] : []
    content {
      sid       = "CompleteLifecycleActionsOfWatchedGroups"
      effect    = "Allow"
      actions   = ["autoscaling:CompleteLifecycleAction"]
      resources = local.asg_arns
    }
  }
}

resource "aws_iam_policy" "server" {
  name        = "${var.name_prefix}-server"
  description = "hsdo server: conditional writes to table ${var.table_name}, Auto Scaling and EC2 describe calls, lifecycle actions of its groups"
  policy      = data.aws_iam_policy_document.server.json
  tags        = var.tags
}

resource "aws_iam_policy" "client" {
  name        = "${var.name_prefix}-client"
  description = "hsdo client: reads of table ${var.table_name}"
  policy      = data.aws_iam_policy_document.client.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "server" {
  for_each   = toset(var.server_role_names)
  role       = each.value
  policy_arn = aws_iam_policy.server.arn
}

resource "aws_iam_role_policy_attachment" "client" {
  for_each   = toset(var.client_role_names)
  role       = each.value
  policy_arn = aws_iam_policy.client.arn
}
