"""Training one experiment: the trainer (trainer), what a model is compiled with (compile,
schedules), the trainer's callbacks (callbacks) and the run directory's files (run_directory).
Calls zoo.deploy to export a finished run; nothing but studies and the CLI imports it (and the
package facade, which imports schedules to register its Keras schedule).
"""
