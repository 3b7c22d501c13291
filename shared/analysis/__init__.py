"""metric analysis: providers that turn one query into one number"""
