# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex3',
 'points': None,
 'suites': [{'cases': [{'name': 'ex3 most_changed_n',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(most_changed_n, json.loads('3'), 0)\n"
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
