from dsassist.cli import main

main()
