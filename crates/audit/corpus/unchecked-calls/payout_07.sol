pragma solidity ^0.7.4;

// The success flag is captured and then forgotten.
contract Payroll {
    mapping(address => uint256) public salary;
    address public employer;

    constructor() {
        employer = msg.sender;
    }

    function fund(address employee) external payable {
        require(msg.sender == employer, "employer");
        salary[employee] += msg.value;
    }

    function collect() external {
        uint256 amount = salary[msg.sender];
        salary[msg.sender] = 0;
        (bool success, ) = payable(msg.sender).call{value: amount}(""); // expect: unchecked-calls
    }
}
