# A termination hook on each watched group, when var.lifecycle_hook is on
# (default off: a hook changes how every scale-in of the groups behaves). An instance that scales
# in waits in Terminating:Wait while hsdo drains its slot (no new sessions,
# existing ones finish); the server then completes the action (CONTINUE).
# Should no server be running, Auto Scaling goes on by itself after
# heartbeat_timeout, so a broken hsdo never blocks a scale-in for long.
resource "aws_autoscaling_lifecycle_hook" "drain" {
  for_each = local.lifecycle_hook ? toset(var.asg_names) : toset([])

  name                   = var.lifecycle_hook_name
  autoscaling_group_name = each.value
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  default_result         = "CONTINUE"
}
