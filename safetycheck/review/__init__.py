"""The auditor's pages: the queue with filters, counts and charts, one check with its reviews, CSV export."""
