"""Quality as the field measures it: metrics (:mod:`.metrics`), dataset layouts (:mod:`harmcli.data.layouts`) and the
side-by-side runner behind ``harmcli eval`` (:mod:`.runner`). Importing this package loads nothing heavy."""
