"""Campaign flows that chain the stage makers."""
