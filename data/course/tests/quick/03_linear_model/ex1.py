# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex1',
 'points': None,
 'suites': [{'cases': [{'name': 'ex1 best_k',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(best_k, json.loads('20'), 0)\n"
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
