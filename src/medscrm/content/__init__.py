"""The approved-content library (MLR): items, review and approval, sendability."""
