from harmcli.cli.app import main

main()
