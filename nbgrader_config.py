"""nbgrader's configuration for the labs (INSTRUCTORS.md, "Grading").

The repository is the course directory: the chapters in labs/ are nbgrader's *source*
assignments (the instructor edition, with solutions and hidden tests), labs-student/ is
its *release* folder (the student edition). From the repository's root:

    nbgrader generate_assignment 05-split-drivers --force   # labs-student/05-split-drivers/
    make editions                                          # every chapter, executed
"""

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)

c.CourseDirectory.source_directory = "labs"
c.CourseDirectory.release_directory = "labs-student"
c.CourseDirectory.db_url = "sqlite:///build/gradebook.db"
# a solution region becomes the placeholder the exercise checks (labs/_build/exercise_cells.py)
c.ClearSolutions.code_stub = {"python": "answer = ...  # your answer"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
