from harness.dropin.install import main

main()
