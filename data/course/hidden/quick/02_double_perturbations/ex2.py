# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex2',
 'points': None,
 'suites': [{'cases': [{'name': 'ex2 gears_wins',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(gears_wins, json.loads('37'), 0)\n"
                                'True',
                        'hidden': True,
                        'points': 1,
                        'locked': False},
                       {'name': 'ex2 n_pairs',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(n_pairs, json.loads('310'), 0)\n"
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
