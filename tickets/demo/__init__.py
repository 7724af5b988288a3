"""The demo data set: a fictional SaaS company's categories, templates and tickets."""
