variable "table_name" {
  description = "Name of the DynamoDB table (hsdo's dynamodb.table, DYNAMODB_TABLE_NAME)."
  type        = string
  default     = "hsdo"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table_name))
    error_message = "table_name must be 3 to 255 characters of A-Z, a-z, 0-9, '_', '-' and '.' (DynamoDB's rule)."
  }
}

variable "point_in_time_recovery" {
  description = "Keep continuous backups of the table (35 days of point-in-time recovery)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse DeleteTable on the table until this is turned off."
  type        = bool
  default     = true
}

variable "pools" {
  description = "Pools (partition keys) the policies allow; empty allows every pool of the table. Several services can then share one table without reading each other's slots."
  type        = list(string)
  default     = []
}

variable "asg_names" {
  description = "Auto Scaling Groups the server watches (server.aws.asgNames, SERVER_ASG_NAMES). Empty: the server lists targets from Consul or a file and gets no Auto Scaling or EC2 permission."
  type        = list(string)
  default     = []
}

variable "lifecycle_hook" {
  description = "Put a termination lifecycle hook (lifecycle_hook_name) on every group of asg_names, grant the server CompleteLifecycleAction on them and set HSDO_SERVER_AWS_LIFECYCLE_HOOK: scale-ins then wait for hsdo to drain the instance (up to lifecycle_hook_heartbeat_timeout). Off by default: no hook, no permission."
  type        = bool
  default     = false
}

variable "lifecycle_hook_name" {
  description = "Name of the termination lifecycle hook when lifecycle_hook is on, which the server completes once an instance is drained (server.aws.lifecycleHook, HSDO_SERVER_AWS_LIFECYCLE_HOOK)."
  type        = string
  default     = "hsdo-drain"
}

variable "lifecycle_hook_heartbeat_timeout" {
  description = "Seconds an instance may wait in Terminating:Wait before Auto Scaling goes on by itself (CONTINUE). Keep it above hsdo's server.drain plus a few ticks, so hsdo completes the action first."
  type        = number
  default     = 300

  validation {
    condition     = var.lifecycle_hook_heartbeat_timeout >= 30 && var.lifecycle_hook_heartbeat_timeout <= 7200
    error_message = "lifecycle_hook_heartbeat_timeout must be between 30 and 7200 seconds (Auto Scaling's limits)."
  }
}

variable "name_prefix" {
  description = "Prefix of the IAM policy names."
  type        = string
  default     = "hsdo"
}

variable "server_role_names" {
  description = "IAM roles (of the instances or tasks running `hsdo --server`) to attach the server policy to."
  type        = list(string)
  default     = []
}

variable "client_role_names" {
  description = "IAM roles (of the HAProxy nodes running `hsdo --client`) to attach the client policy to."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags put on the table and the policies."
  type        = map(string)
  default     = {}
}
