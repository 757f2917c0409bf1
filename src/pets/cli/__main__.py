from pets.cli import main

main()
