"""notification-service: pushes approval and leave events to employees over WebSockets."""
