"""The embedrec AWS CDK app: one construct per capability, composed by ``cdk.stack.EmbedrecStack``."""
