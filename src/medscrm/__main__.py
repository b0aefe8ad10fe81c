from medscrm.cli import main

main()
