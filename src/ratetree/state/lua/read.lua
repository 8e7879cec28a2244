-- Reads the gates (dropping expired leases) and changes nothing else.
return report(1)
